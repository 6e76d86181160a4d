/*
 * free-port: prints N (default 1) TCP ports on 127.0.0.1 that are free right
 * now, one per line, by binding port 0 and reading back what the kernel gave.
 * All N sockets are held until every port is chosen so that they differ.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int fds[64];
    int i;

    if (n < 1 || n > 64) {
        fprintf(stderr, "free-port: count must be 1..64\n");
        return 2;
    }
    for (i = 0; i < n; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0) {
            perror("free-port");
            return 1;
        }
        printf("%u\n", ntohs(sa.sin_port));
    }
    for (i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
