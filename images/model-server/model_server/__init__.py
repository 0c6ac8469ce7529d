"""The model-server reference image: OpenAI-compatible completions from /content/model."""
