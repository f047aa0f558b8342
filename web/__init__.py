"""HTTP adapters only: parse, authorise, call the domain, format."""
