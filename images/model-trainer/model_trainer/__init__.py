"""The model-trainer reference image: fine-tune /content/model on /content/data."""
