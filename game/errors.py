"""The one exception type for errors a user can cause."""


class ProofQuestError(Exception):
    """Something a user gave or asked for is wrong.

    The message says what was wrong and what to do about it. The command line
    prints it and exits non-zero; the web layer turns it into a 4xx response.
    """


class EditConflict(ProofQuestError):
    """An edit that does not fit the segmentation's current state.

    Raised when an edit would be applied twice, names supervoxels outside the
    segment it says they leave, or an undo would reverse an edit that a later
    one depends on. A user's request (an undo) gets it as a clear message; a
    stored edit log that raises it on replay is a broken invariant.
    """
