# directory/ - see Makefile
