"""The dataset-loader reference image: fetch a URL or a git repository into /content/artifacts."""
