/*
 * CancelRequest handling (cancel.c).
 */
#ifndef PGW_CANCEL_H
#define PGW_CANCEL_H

#include "gateway/client.h"

/* cl is the cancel connection: it reads nothing more and is closed once
 * every worker that may hold the target has answered. */
void client_cancel_request(client *cl, const pgw_cancel_request *cr);

#endif
