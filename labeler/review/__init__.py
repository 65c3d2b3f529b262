"""Human review: `routing` picks the doubtful labels (pure), `argilla` pushes them to Argilla and pulls the
answers back (the only module that talks to Argilla), `server` runs a local Argilla server, `processes` holds
its process, port and lock helpers."""
