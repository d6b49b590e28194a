"""Detection: suspected false splits and false merges, each with a proposed edit and a score."""
