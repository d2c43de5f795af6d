"""Athena's Hive DDL read with sqlglot: the statements ``athena_ddl.py`` runs on the Glue catalog.

Athena routes CREATE [EXTERNAL] TABLE (without AS SELECT), ALTER TABLE, DROP TABLE and MSCK
REPAIR TABLE to its Hive engine, and so does sqlglot's ``athena`` dialect: these statements
are read with Hive's grammar. sqlglot's Hive parser lacks two forms Athena accepts, added
here rather than read around with regexes:

* ``ALTER TABLE t ADD PARTITION (...) [LOCATION '...'] PARTITION (...) ...``: Hive lists
  the partitions of one ADD without commas; sqlglot reads only the first and falls back to
  an opaque Command for the rest;
* ``MSCK REPAIR TABLE t``: sqlglot keeps the whole statement as an opaque Command string.

A statement sqlglot cannot read fails with SYNTAX_ERROR and the line:column of the token it
stopped at, where sqlglot would fall back to an unchecked Command.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.hive import Hive
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from localaws.athena.sql import QueryFailed

# The first words of the statements Athena runs on Hive (and this module reads)
HIVE_DDL = (
    ("CREATE", "TABLE"),
    ("CREATE", "EXTERNAL", "TABLE"),
    ("DROP", "TABLE"),
    ("ALTER", "TABLE"),
    ("MSCK", "REPAIR", "TABLE"),
)


class RepairTable(exp.Expression):
    """MSCK REPAIR TABLE <table>: sqlglot has no node for it."""

    arg_types = {"this": True}


class AthenaHive(Hive):
    """sqlglot's Hive dialect with the two DDL forms above."""

    class Tokenizer(Hive.Tokenizer):
        # Hive's tokenizer makes "MSCK REPAIR" a command, whose rest is one string token;
        # as plain words, the table name after it is read as a table.
        KEYWORDS = {key: kind for key, kind in Hive.Tokenizer.KEYWORDS.items() if key != "MSCK REPAIR"}

    class Parser(Hive.Parser):
        def _parse_statement(self) -> exp.Expr | None:
            if self._match_text_seq("MSCK", "REPAIR", "TABLE"):
                return self.expression(RepairTable(this=self._parse_table_parts()))
            return super()._parse_statement()

        def _parse_alter_table_add(self) -> list[exp.Expr]:
            start = self._index
            exists = self._parse_exists(not_=True)
            if not self._match(TokenType.PARTITION, advance=False):
                self._retreat(start)
                return super()._parse_alter_table_add()
            added: list[exp.Expr] = []
            while partition := self._parse_partition():
                location = self._match_text_seq("LOCATION", advance=False) and self._parse_property()
                added.append(
                    self.expression(
                        exp.AddPartition(this=partition, exists=exists, location=location or None)
                    )
                )
            return added

        def _parse_as_command(self, start: Token) -> exp.Command:
            # sqlglot keeps what it cannot read as an opaque Command: here that is a syntax error
            self.raise_error(f"cannot read this {start.text.upper()} statement")
            raise AssertionError("raise_error raises at the IMMEDIATE error level")


def _syntax_error(error: ParseError) -> QueryFailed:
    first = error.errors[0] if error.errors else {}
    where = f"line {first['line']}:{first['col']}: " if "line" in first else ""
    # sqlglot's "Expected X but got <Token ...>" names the token by its repr: the highlight
    # (the token where reading stopped) says it better
    description = str(first.get("description", error)).partition(" but got <Token")[0]
    near = f" near '{first['highlight']}'" if first.get("highlight") else ""
    return QueryFailed(f"SYNTAX_ERROR: {where}{description}{near}")


def parse_ddl(sql: str) -> exp.Expression | None:
    """The syntax tree of ``sql`` if Athena runs it on Hive (see HIVE_DDL), else None.

    A CREATE TABLE ... AS SELECT is Trino's, as in sqlglot's ``athena`` dialect: None.
    """
    dialect = AthenaHive()
    try:
        tokens = dialect.tokenize(sql)
    except TokenError:
        return None  # the query engine's parser reports it
    words = tuple(token.text.upper() for token in tokens[:3])
    if not any(words[: len(head)] == head for head in HIVE_DDL):
        return None
    if any(token.token_type == TokenType.SELECT for token in tokens):
        return None
    try:
        statements = [s for s in dialect.parser().parse(tokens, sql) if s is not None]
    except ParseError as error:
        raise _syntax_error(error) from error
    if len(statements) != 1:
        raise QueryFailed("SYNTAX_ERROR: only one statement per query is allowed")
    return statements[0]
