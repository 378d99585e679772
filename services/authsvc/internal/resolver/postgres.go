package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the full resolver on PostgreSQL (resolver { type: full,
// postgres: "postgres://..." }): every authsvc replica pointed at the same
// database serves the same accounts, and a JWT pushed through any of them
// is seen by all (Generation reads the database).
type Postgres struct {
	pool *pgxpool.Pool
	url  string
}

// postgresTimeout bounds one statement.
const postgresTimeout = 5 * time.Second

const schema = `
CREATE TABLE IF NOT EXISTS switchyard_account_jwts (
	account    text PRIMARY KEY,
	jwt        text NOT NULL,
	seq        bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE IF NOT EXISTS switchyard_account_jwts_seq;
`

// NewPostgres connects, creates the table when missing and adds the
// preloaded accounts it does not hold yet.
func NewPostgres(ctx context.Context, url string, preload map[string]string) (*Postgres, error) {
	cctx, cancel := context.WithTimeout(ctx, postgresTimeout)
	defer cancel()
	pool, err := pgxpool.New(cctx, url)
	if err != nil {
		return nil, fmt.Errorf("resolver postgres: %w", err)
	}
	if _, err := pool.Exec(cctx, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("resolver postgres: creating the account JWT table: %w", err)
	}
	p := &Postgres{pool: pool, url: redact(url)}
	for k, v := range preload {
		if err := checkKey(k); err != nil {
			pool.Close()
			return nil, err
		}
		if _, err := pool.Exec(cctx, `INSERT INTO switchyard_account_jwts (account, jwt, seq)
			VALUES ($1, $2, nextval('switchyard_account_jwts_seq')) ON CONFLICT (account) DO NOTHING`, k, v); err != nil {
			pool.Close()
			return nil, fmt.Errorf("resolver postgres: preloading %s: %w", k, err)
		}
	}
	return p, nil
}

// redact drops the password from a URL for logs.
func redact(url string) string {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return "postgres"
	}
	return fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

func (p *Postgres) Get(account string) (string, bool, error) {
	if checkKey(account) != nil {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	var jwt string
	err := p.pool.QueryRow(ctx, `SELECT jwt FROM switchyard_account_jwts WHERE account = $1`, account).Scan(&jwt)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return jwt, true, nil
}

func (p *Postgres) List() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, `SELECT account FROM switchyard_account_jwts ORDER BY account`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Put stores the JWT; the commit is durable before it returns.
func (p *Postgres) Put(account, jwt string) error {
	if err := checkKey(account); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	_, err := p.pool.Exec(ctx, `INSERT INTO switchyard_account_jwts (account, jwt, seq)
		VALUES ($1, $2, nextval('switchyard_account_jwts_seq'))
		ON CONFLICT (account) DO UPDATE SET jwt = EXCLUDED.jwt, seq = EXCLUDED.seq, updated_at = now()`, account, jwt)
	return err
}

func (p *Postgres) Generation() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	var gen int64
	err := p.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM switchyard_account_jwts`).Scan(&gen)
	return uint64(gen), err
}

func (p *Postgres) Kind() string { return p.url }
func (p *Postgres) Close()       { p.pool.Close() }
