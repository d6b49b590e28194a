"""The one exception type for errors a user can cause."""


class ProofQuestError(Exception):
    """Something a user gave or asked for is wrong.

    The message says what was wrong and what to do about it. The command line
    prints it and exits non-zero; the web layer turns it into a 4xx response.
    """
