"""The model-loader reference image: import a model from a URL or one the image ships."""
