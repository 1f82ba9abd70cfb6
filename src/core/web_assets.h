/*
 * web_assets.h
 *	  Static files compiled into the library (the demo page, the JS client):
 *	  see tools/embed-assets.  GET / serves /index.html.
 */
#ifndef CHAT_WEB_ASSETS_H
#define CHAT_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset
{
	const char *path;			/* "/index.html"; NULL ends the table */
	const unsigned char *data;
	size_t		len;
} web_asset;

extern const web_asset web_assets[];

/* web_asset_find returns the asset for a request path, or NULL. */
extern const web_asset *web_asset_find(const char *path);

/* web_asset_type guesses the Content-Type from the path's extension. */
extern const char *web_asset_type(const char *path);

#endif							/* CHAT_WEB_ASSETS_H */
