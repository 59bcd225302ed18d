"""A real-``emerge`` builder host for tests, on Portage's ResolverPlayground.

``portage_env`` builds the environment and command line for emerge in a
playground (reusable for a client host), ``ebuilds`` holds the test
repository, ``builder`` the builder host, ``craft`` makes broken binpkgs from
good ones, and ``fixtures`` the session-scoped ``builder_playground``
fixture (its docstring says how to use it).
"""
