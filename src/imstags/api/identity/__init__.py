"""Identity: the Keystone v3 subset that issues and checks tokens."""
