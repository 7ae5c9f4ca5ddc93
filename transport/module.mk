# transport/ - see Makefile
