// The trainer.
