/* mta_main.c - ix-mta: the message transfer agent daemon that runs the queue (started by the attendant).
 * The logic is in mta.c. */
#include "transport/mta/mta.h"

int main(int argc, char **argv)
{
	return mta_main(argc, argv);
}
