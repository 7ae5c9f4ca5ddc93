# tests/ - see Makefile
