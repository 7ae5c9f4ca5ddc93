# attendant/ - see Makefile
