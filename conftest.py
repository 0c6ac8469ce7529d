# The local-stack fixtures (stack, namespace, ...) live in one place, shared by every test tree.
pytest_plugins = ["substratus_local.testing"]
