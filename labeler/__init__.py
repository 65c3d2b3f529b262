"""labeler: turn unlabeled prompt/response pairs into preference labels with a GenRM judge."""

__version__ = "0.1.0"
