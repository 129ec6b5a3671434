"""The administrator's web console at ``/admin`` (issue 16): reps, policy, the team
report and health, served by the tracking server itself, off until an administrator
exists (``mailbeacon server add-admin``)."""
