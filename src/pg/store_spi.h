/*
 * store_spi.h
 *	  The core's storage interface (core/store.h) over SPI.
 */
#ifndef CHAT_PG_STORE_SPI_H
#define CHAT_PG_STORE_SPI_H

#include "core/store.h"

/* Fill *store with the SPI implementation. */
extern void chat_store_spi_init(chat_store *store);

/* True once CREATE EXTENSION chat has been run in this database. */
extern bool chat_store_spi_ready(void);

#endif							/* CHAT_PG_STORE_SPI_H */
