/*-------------------------------------------------------------------------
 *
 * webhook_sink.c
 *	  bench/relay.sh's webhook receiver: HTTP/1.1 with keep-alive, every
 *	  POST answered 200 at once, so that the relay's own cost is measured.
 *
 *	  webhook_sink PORT_FILE
 *
 * Listens on 127.0.0.1 on a free port (written to PORT_FILE), serves any
 * number of connections from one poll() loop, reads each request's
 * headers and Content-Length body, and answers "200 OK" with an empty
 * body.  Runs until killed.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BUF_SIZE (8 * 1024 * 1024)

typedef struct Conn
{
	char	   *buf;
	size_t		len;
} Conn;

static const char answer[] =
"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/* Answer every complete request at the start of c; false on a bad one. */
static int
serve(int fd, Conn *c)
{
	for (;;)
	{
		char	   *end;
		char	   *cl;
		size_t		head,
					body = 0;

		c->buf[c->len] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (end == NULL)
			return 1;
		head = end + 4 - c->buf;
		cl = strcasestr(c->buf, "\r\ncontent-length:");
		if (cl != NULL && cl < end)
			body = strtoul(cl + 17, NULL, 10);
		if (head + body > c->len)
			return head + body < BUF_SIZE;
		if (write(fd, answer, sizeof(answer) - 1) < 0)
			return 0;
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in addr;
	socklen_t	alen = sizeof(addr);
	struct pollfd fds[MAX_CONNS + 1];
	Conn		conns[MAX_CONNS + 1];
	int			one = 1;
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);
	FILE	   *f;

	if (argc != 2)
	{
		fprintf(stderr, "usage: webhook_sink PORT_FILE\n");
		return 1;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(lfd, 16) != 0 ||
		getsockname(lfd, (struct sockaddr *) &addr, &alen) != 0)
	{
		perror("webhook_sink");
		return 1;
	}
	f = fopen(argv[1], "w");
	fprintf(f, "%d\n", ntohs(addr.sin_port));
	fclose(f);
	for (int i = 0; i <= MAX_CONNS; i++)
	{
		fds[i].fd = -1;
		fds[i].events = POLLIN;
		conns[i].buf = NULL;
		conns[i].len = 0;
	}
	fds[0].fd = lfd;
	for (;;)
	{
		if (poll(fds, MAX_CONNS + 1, -1) < 0)
			continue;
		if (fds[0].revents & POLLIN)
		{
			int			cfd = accept(lfd, NULL, NULL);

			for (int i = 1; cfd >= 0 && i <= MAX_CONNS; i++)
				if (fds[i].fd < 0)
				{
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					fds[i].fd = cfd;
					conns[i].buf = malloc(BUF_SIZE + 1);
					conns[i].len = 0;
					cfd = -1;
				}
			if (cfd >= 0)
				close(cfd);
		}
		for (int i = 1; i <= MAX_CONNS; i++)
		{
			ssize_t		n;

			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i].fd, conns[i].buf + conns[i].len,
					 BUF_SIZE - conns[i].len);
			if (n <= 0 || (conns[i].len += n, !serve(fds[i].fd, &conns[i])))
			{
				close(fds[i].fd);
				fds[i].fd = -1;
				free(conns[i].buf);
				conns[i].buf = NULL;
			}
		}
	}
}
