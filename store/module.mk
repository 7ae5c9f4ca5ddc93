# store/ - see Makefile
