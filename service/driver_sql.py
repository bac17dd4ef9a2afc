"""Core statements compiled once and run straight on a pooled DBAPI cursor.

SQLAlchemy's ``Connection.execute`` costs about as much per call as the database's own
work for a one-row insert: an execution context, a cache lookup, parameter processing
and result wrapping on every call. The intake runs the same few statements on every
request, so it compiles them once per engine and keeps only what the driver needs:
the SQL text, the order of its parameters and each column type's bind processor.
The statements themselves stay SQLAlchemy Core, checked against the table metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class DriverStatement:
    """``statement`` compiled for ``dialect``: SQL text plus parameters in the driver's form."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"{type(statement).__name__} does not compile to SQL")
        self.sql = compiled.string
        # qmark and format drivers take a sequence in SQL order, the others a mapping.
        self._positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._processors: dict[str, Callable[[Any], Any]] = {}
        # The values the statement holds itself (``Comment.status == APPROVED``), converted
        # once; a column's Python-side default is no such value (it has none here).
        self._constants: dict[str, Any] = {}
        names: list[str] = []
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.required and bind.value is not None:
                self._constants[name] = processor(bind.value) if processor is not None else bind.value
                continue
            if processor is not None:
                self._processors[name] = processor
            names.append(name)
        self._names = tuple(names)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``values`` by bind name, converted by each column's type, in the driver's paramstyle.

        Every bind parameter the statement holds no value for needs one, including those
        of columns with Python-side defaults, which only SQLAlchemy's own execution fills
        in. Raises ``KeyError`` naming a bind parameter ``values`` lacks.
        """
        converted = {
            name: processor(values[name]) if (processor := self._processors.get(name)) else values[name]
            for name in self._names
        }
        if self._constants:
            converted.update(self._constants)
        if self._positions is None:
            return converted
        return tuple(converted[name] for name in self._positions)
