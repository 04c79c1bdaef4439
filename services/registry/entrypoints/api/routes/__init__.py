"""One router per family of endpoints; each route parses, calls one handler, returns."""
