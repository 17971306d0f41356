"""labelloop: an active-learning labelling web app."""
