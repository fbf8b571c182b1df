"""Local stand-ins for the push providers: real HTTP servers on 127.0.0.1 that check what they receive."""
