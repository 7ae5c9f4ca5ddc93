/* smtpd_main.c - ix-smtpd: the SMTP server daemon (started by the attendant). The logic is in smtpd.c. */
#include "transport/smtp/smtpd.h"

int main(int argc, char **argv)
{
	return smtpd_main(argc, argv);
}
