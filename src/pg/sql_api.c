/*
 * sql_api.c
 *	  SQL-callable C functions: chat_online and chat._user_online (presence
 *	  from shared memory) and chat_mint_token (HS256 tokens for demos and
 *	  tests).
 */
#include "postgres.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "core/jwt.h"
#include "pg/secret.h"
#include "pg/settings.h"
#include "pg/shmem.h"

PG_FUNCTION_INFO_V1(chat_online);
PG_FUNCTION_INFO_V1(chat_mint_token);
PG_FUNCTION_INFO_V1(chat_user_online);

/*
 * chat_online returns the members of a channel who have a live connection
 * on any worker now.  Membership comes from the table; who is online comes
 * only from shared memory.
 */
Datum
chat_online(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		channel = PG_GETARG_DATUM(0);
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	int			rc;
	char	  **users;
	bool	   *online;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	values[0] = channel;
	SPI_connect();
	rc = SPI_execute_with_args("SELECT 1 FROM chat.channels WHERE id = $1",
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read channels: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("channel %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, channel)))));
	rc = SPI_execute_with_args("SELECT user_id FROM chat.channel_members "
							   "WHERE channel_id = $1 ORDER BY user_id",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read channel members: %s",
			 SPI_result_code_string(rc));
	users = palloc(sizeof(char *) * (SPI_processed + 1));
	online = palloc(sizeof(bool) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
		users[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	chat_presence_filter((const char *const *) users, (int) SPI_processed,
						 online);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *user = users[i];
		Datum		out[1];
		bool		nulls[1] = {false};

		if (!online[i])
			continue;
		out[0] = CStringGetTextDatum(user);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * chat_mint_token signs {"sub", "iat", "exp"} with chat.jwt_secret.
 * Superuser only: it is a way to act as any user.
 */
Datum
chat_mint_token(PG_FUNCTION_ARGS)
{
	text	   *user = PG_GETARG_TEXT_PP(0);
	Interval   *ttl = PG_GETARG_INTERVAL_P(1);
	char	   *sub = text_to_cstring(user);
	int64		now = (int64) time(NULL);
	int64		secs;
	char		token[1024];
	int			len;
	char	   *secret = NULL;
	size_t		secret_len = 0;
	char		err[256];

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may mint chat tokens"),
				 errhint("Mint tokens in the application with chat.jwt_secret.")));
	if (sub[0] == '\0' || strlen(sub) > JWT_MAX_SUB)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user id must be 1 to %d bytes", JWT_MAX_SUB)));
	secs = ttl->time / USECS_PER_SEC +
		(int64) ttl->day * SECS_PER_DAY +
		(int64) ttl->month * DAYS_PER_MONTH * SECS_PER_DAY;
	if (secs <= 0 || secs > (int64) 366 * SECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token lifetime must be positive and at most a year")));
	switch (chat_hs_secret(&secret, &secret_len, err, sizeof(err)))
	{
		case CHAT_SECRET_OK:
			break;
		case CHAT_SECRET_NONE:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("chat.jwt_secret is not set")));
			break;
		case CHAT_SECRET_BAD:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s", err)));
			break;
	}
	len = jwt_sign_hs256((const unsigned char *) secret, secret_len, sub,
						 now, now + secs, token, sizeof(token));
	chat_secret_free(secret, secret_len);
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("could not mint a token for this user id")));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(token, len));
}

/*
 * chat_user_online (chat._user_online(user_id)) tells whether the user has
 * a live connection on any worker now: the notification trigger's
 * "offline" is this function returning false.
 */
Datum
chat_user_online(PG_FUNCTION_ARGS)
{
	char		user[JWT_MAX_SUB + 1];
	const char *users[1] = {user};
	bool		online;

	text_to_cstring_buffer(PG_GETARG_TEXT_PP(0), user, sizeof(user));
	chat_presence_filter(users, 1, &online);
	PG_RETURN_BOOL(online);
}
