/*
 * spi_plan.c
 *	  Plans kept for the backend's life; see spi_plan.h.
 */
#include "postgres.h"

#include "pg/spi_plan.h"

SPIPlanPtr
chat_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan;

	if (*slot != NULL)
		return *slot;
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the plan of \"%s\"", sql);
	*slot = plan;
	return plan;
}
