"""Follow-up: send later, "remind me if no reply", and sequences (issue 17).

``store`` keeps the durable state, ``loop`` sends what is due by the injected
clock, ``commands`` is ``mailbeacon schedule`` and ``mailbeacon sequence``. The
time rules themselves are pure, in ``core/followup_time.py``.
"""
