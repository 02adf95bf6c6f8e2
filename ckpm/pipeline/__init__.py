"""`ckpm run`: the stages provision -> compile -> run -> validate -> record."""
