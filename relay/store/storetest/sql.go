package storetest

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// execSQL runs sql with the simple protocol, so a file of several
// statements (coturn's schema.sql) runs as psql -f would.
func execSQL(ctx context.Context, url, sql string) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.PgConn().Exec(ctx, sql).ReadAll()
	return err
}
