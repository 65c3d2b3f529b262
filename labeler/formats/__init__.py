"""Input formats: where pairs come from (`sources`), which preference layout a row uses and how it becomes our
pairs (`layouts`), and chat messages (`messages`)."""
