"""The GenRM judge: prompts, backends, verdict parsing and pooling over both orders."""
