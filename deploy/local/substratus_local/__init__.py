"""The local stack behind `make up`, `make down` and the test fixtures."""
