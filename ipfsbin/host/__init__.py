"""What this host is: the client's side of the compatibility predicate."""
