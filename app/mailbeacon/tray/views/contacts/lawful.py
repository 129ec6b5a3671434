"""The lawful bases for processing a contact's data (GDPR article 6): stored as short
codes (the command line, exports and scripts use them), shown in the rep's language.

The field stays free text: a basis typed that is none of these is stored and shown as
typed.
"""

from __future__ import annotations

from mailbeacon.core.language import Language, mark

# TRANSLATORS: the lawful bases of GDPR article 6, as a short label for each code.
LAWFUL_BASES: dict[str, str] = {
    "consent": mark("consent"),
    "contract": mark("contract"),
    "legal-obligation": mark("legal-obligation"),
    "vital-interests": mark("vital-interests"),
    "public-task": mark("public-task"),
    "legitimate-interest": mark("legitimate-interest"),
}


def basis_label(code: str, tr: Language) -> str:
    """How the rep reads a stored basis: a known code in ``tr``, else as stored."""
    message = LAWFUL_BASES.get(code)
    return tr.t(message) if message is not None else code


def basis_code(text: str, tr: Language) -> str:
    """What to store for the basis the rep chose or typed: a known code for its label
    (or the code itself), else the text as typed."""
    for code, message in LAWFUL_BASES.items():
        if text in (code, tr.t(message)):
            return code
    return text
