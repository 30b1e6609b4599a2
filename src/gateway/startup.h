/*
 * A client's startup phase (startup.c): what comes before authentication.
 */
#ifndef PGW_STARTUP_H
#define PGW_STARTUP_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/client.h"

/* An SSLRequest, GSSENCRequest, CancelRequest or startup packet; `used`
 * is its length in the client's input. */
client_step client_startup_packet(client *cl, const pgw_msg *m, size_t used);
/* Direct TLS (a ClientHello where the startup packet should be): started
 * when that is what comes; false when the client was closed. */
bool client_start_direct_tls(client *cl);

#endif
