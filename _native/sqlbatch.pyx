# cython: language_level=3, boundscheck=False, wraparound=False
"""Native SQLite batch writer: the compiled twin of ``s3gw/pfs/_sqlbatch_py.py``.

Theory of operation
-------------------
Python's ``sqlite3`` gives up the GIL around every ``sqlite3_step`` and takes it
back afterwards.  The committer thread shares the GIL with the event loop, so
each statement of a commit ends with a wait for the loop to reach a system
call: a batch of four small PUTs made about nineteen such hand-overs.

``BatchDb`` is a connection of its own (libsqlite3's C API) with two calls:

* ``run(ops)``: ``ops`` is a list of ``(sql, params)``.  Each statement is
  prepared once (kept by its text) and the parameters are converted to C values
  with the GIL held; then every statement is bound and stepped to the end with
  the GIL released, in order: one hand-over for the whole list, ``COMMIT`` and
  its WAL fsync included.  The first failing statement stops the list and
  raises ``sqlite3.IntegrityError`` (a constraint) or ``sqlite3.OperationalError``
  (anything else), with SQLite's message; what ran before it stays applied (the
  caller rolls back).
* ``query(sql, params)``: the rows of one statement, as Python's ``sqlite3``
  returns them (int, float, str, bytes, None), stepped with the GIL held: the
  commit path's reads are point lookups of hot pages, microseconds each, where a
  hand-over would cost more than the read.

Values: None -> NULL, int -> INTEGER (64-bit, else OverflowError), float ->
REAL, str -> TEXT (UTF-8), bytes / bytearray / memoryview -> BLOB: the same
mapping as ``sqlite3``.  One thread at a time (the connection is opened
without SQLite's own mutex; s3gw serialises its writers).
"""

import sqlite3 as _sqlite3

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uintptr_t

API_VERSION = 1


def library() -> tuple:
    """``(address of sqlite3_libversion, version, threadsafe)`` of the SQLite this
    module is linked with.  Two copies of SQLite in one process corrupt databases
    (each keeps its own list of POSIX locks; closing a file in one drops the
    other's locks), so ``s3gw.pfs.sqlbatch`` uses this module only if Python's
    ``sqlite3`` resolves to the same one."""
    return (<uintptr_t>&sqlite3_libversion, sqlite3_libversion().decode(), sqlite3_threadsafe())

cdef extern from "sqlite3.h" nogil:
    ctypedef struct sqlite3:
        pass
    ctypedef struct sqlite3_stmt:
        pass
    ctypedef long long sqlite3_int64
    int SQLITE_OK, SQLITE_ROW, SQLITE_DONE, SQLITE_CONSTRAINT, SQLITE_BUSY
    int SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL
    int SQLITE_OPEN_READWRITE, SQLITE_OPEN_CREATE, SQLITE_OPEN_NOMUTEX
    int SQLITE_PREPARE_PERSISTENT
    ctypedef void (*destructor_t)(void*)
    destructor_t SQLITE_STATIC
    int sqlite3_open_v2(const char*, sqlite3**, int, const char*)
    int sqlite3_close_v2(sqlite3*)
    int sqlite3_busy_timeout(sqlite3*, int)
    int sqlite3_prepare_v3(sqlite3*, const char*, int, unsigned int, sqlite3_stmt**, const char**)
    int sqlite3_finalize(sqlite3_stmt*)
    int sqlite3_reset(sqlite3_stmt*)
    int sqlite3_step(sqlite3_stmt*)
    int sqlite3_bind_null(sqlite3_stmt*, int)
    int sqlite3_bind_int64(sqlite3_stmt*, int, sqlite3_int64)
    int sqlite3_bind_double(sqlite3_stmt*, int, double)
    int sqlite3_bind_text(sqlite3_stmt*, int, const char*, int, destructor_t)
    int sqlite3_bind_blob(sqlite3_stmt*, int, const void*, int, destructor_t)
    int sqlite3_bind_parameter_count(sqlite3_stmt*)
    int sqlite3_column_count(sqlite3_stmt*)
    int sqlite3_column_type(sqlite3_stmt*, int)
    sqlite3_int64 sqlite3_column_int64(sqlite3_stmt*, int)
    double sqlite3_column_double(sqlite3_stmt*, int)
    const unsigned char* sqlite3_column_text(sqlite3_stmt*, int)
    const void* sqlite3_column_blob(sqlite3_stmt*, int)
    int sqlite3_column_bytes(sqlite3_stmt*, int)
    const char* sqlite3_errmsg(sqlite3*)
    int sqlite3_get_autocommit(sqlite3*)
    const char* sqlite3_libversion()
    int sqlite3_threadsafe()
    sqlite3_stmt* sqlite3_next_stmt(sqlite3*, sqlite3_stmt*)


cdef enum:
    V_NULL = 0
    V_INT = 1
    V_FLOAT = 2
    V_TEXT = 3
    V_BLOB = 4


cdef struct Val:
    int kind
    sqlite3_int64 i
    double d
    const char* p
    int n


cdef struct Op:
    sqlite3_stmt* stmt
    int first
    int count


cdef int _bind(sqlite3_stmt* st, int col, Val* v) noexcept nogil:
    if v.kind == V_INT:
        return sqlite3_bind_int64(st, col, v.i)
    if v.kind == V_FLOAT:
        return sqlite3_bind_double(st, col, v.d)
    if v.kind == V_TEXT:
        return sqlite3_bind_text(st, col, v.p, v.n, SQLITE_STATIC)
    if v.kind == V_BLOB:
        return sqlite3_bind_blob(st, col, v.p, v.n, SQLITE_STATIC)
    return sqlite3_bind_null(st, col)


cdef class BatchDb:
    """A SQLite connection for a committer: ``run`` a list of statements with one
    GIL hand-over, ``query`` point reads with none."""

    cdef sqlite3* db
    cdef dict _stmts          # sql text -> sqlite3_stmt* (as an int)
    cdef readonly str path
    cdef int timeout_ms

    def __cinit__(self):
        self.db = NULL
        self._stmts = {}

    def __init__(self, str path, *, int timeout_ms=30000, pragmas=()):
        cdef bytes p = path.encode("utf-8")
        cdef const char* cpath = PyBytes_AS_STRING(p)
        cdef int rc
        self.path = path
        with nogil:
            rc = sqlite3_open_v2(cpath, &self.db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 NULL)
        if rc != SQLITE_OK:
            msg = sqlite3_errmsg(self.db).decode("utf-8", "replace") if self.db != NULL else ""
            self.close()
            raise _sqlite3.OperationalError(f"unable to open database {path}: {msg}")
        self.timeout_ms = timeout_ms
        sqlite3_busy_timeout(self.db, timeout_ms)
        for pragma in pragmas:
            self.query(pragma, ())

    @property
    def in_transaction(self) -> bool:
        return self.db != NULL and sqlite3_get_autocommit(self.db) == 0

    def close(self) -> None:
        if self._stmts is not None:
            self._stmts.clear()
        self._close()

    cdef void _close(self) noexcept:
        cdef sqlite3_stmt* st
        if self.db == NULL:
            return
        st = sqlite3_next_stmt(self.db, NULL)
        while st != NULL:
            sqlite3_finalize(st)
            st = sqlite3_next_stmt(self.db, NULL)
        sqlite3_close_v2(self.db)
        self.db = NULL

    def __dealloc__(self):
        self._close()

    cdef sqlite3_stmt* _stmt(self, str sql) except NULL:
        cdef sqlite3_stmt* st = NULL
        cdef bytes text
        cdef int rc
        if self.db == NULL:
            raise _sqlite3.ProgrammingError("Cannot operate on a closed database.")
        ptr = self._stmts.get(sql)
        if ptr is not None:
            return <sqlite3_stmt*><uintptr_t>ptr
        text = sql.encode("utf-8")
        rc = sqlite3_prepare_v3(self.db, PyBytes_AS_STRING(text), <int>PyBytes_GET_SIZE(text),
                                SQLITE_PREPARE_PERSISTENT, &st, NULL)
        if rc != SQLITE_OK or st == NULL:
            if st != NULL:
                sqlite3_finalize(st)
            self._raise(rc)
        self._stmts[sql] = <uintptr_t>st
        return st

    cdef int _raise(self, int rc) except -1:
        msg = sqlite3_errmsg(self.db).decode("utf-8", "replace")
        if (rc & 0xff) == SQLITE_CONSTRAINT:
            raise _sqlite3.IntegrityError(msg)
        raise _sqlite3.OperationalError(msg)

    cdef int _convert(self, object value, Val* v, list keep) except -1:
        if value is None:
            v.kind = V_NULL
        elif isinstance(value, int):
            v.kind = V_INT
            v.i = <int64_t>value      # OverflowError past 64 bits, as sqlite3
        elif isinstance(value, float):
            v.kind = V_FLOAT
            v.d = value
        elif isinstance(value, str):
            b = (<str>value).encode("utf-8")
            keep.append(b)
            v.kind = V_TEXT
            v.p = PyBytes_AS_STRING(b)
            v.n = <int>PyBytes_GET_SIZE(b)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            b = value if type(value) is bytes else bytes(value)
            keep.append(b)
            v.kind = V_BLOB
            v.p = PyBytes_AS_STRING(b)
            v.n = <int>PyBytes_GET_SIZE(b)
        else:
            raise _sqlite3.ProgrammingError(
                f"Error binding parameter: type '{type(value).__name__}' is not supported")
        return 0

    def begin(self) -> None:
        """``BEGIN IMMEDIATE``.  First tried with the GIL held and no busy wait: the
        write lock is almost always free, and taking it is a few system calls
        (microseconds), less than handing the GIL over and back.  If another
        connection holds it, tried again the way ``run`` does: the GIL released,
        waiting up to the busy timeout."""
        cdef sqlite3_stmt* st = self._stmt("BEGIN IMMEDIATE")
        cdef int rc
        sqlite3_busy_timeout(self.db, 0)
        sqlite3_reset(st)
        rc = sqlite3_step(st)
        sqlite3_reset(st)
        sqlite3_busy_timeout(self.db, self.timeout_ms)
        if rc == SQLITE_DONE:
            return
        if (rc & 0xff) != SQLITE_BUSY:
            self._raise(rc)
        self.run([("BEGIN IMMEDIATE", ())])

    def run(self, list ops) -> None:
        """Execute ``(sql, params)`` in order, stepping with the GIL released."""
        cdef Py_ssize_t nops = len(ops), nvals = 0, k, j
        cdef Op* cops = NULL
        cdef Val* vals = NULL
        cdef list keep = []
        cdef int rc = SQLITE_DONE, failed = -1, col
        cdef sqlite3_stmt* st
        if nops == 0:
            return
        for sql, params in ops:
            nvals += len(params)
        cops = <Op*>PyMem_Malloc(nops * sizeof(Op))
        vals = <Val*>PyMem_Malloc((nvals if nvals else 1) * sizeof(Val))
        if cops == NULL or vals == NULL:
            PyMem_Free(cops)
            PyMem_Free(vals)
            raise MemoryError()
        try:
            nvals = 0
            for k in range(nops):
                sql, params = ops[k]
                st = self._stmt(sql)
                if sqlite3_bind_parameter_count(st) != len(params):
                    raise _sqlite3.ProgrammingError(
                        f"Incorrect number of bindings supplied. The current statement uses "
                        f"{sqlite3_bind_parameter_count(st)}, and there are {len(params)} supplied.")
                cops[k].stmt = st
                cops[k].first = <int>nvals
                cops[k].count = <int>len(params)
                for value in params:
                    self._convert(value, &vals[nvals], keep)
                    nvals += 1
            with nogil:
                for k in range(nops):
                    st = cops[k].stmt
                    sqlite3_reset(st)
                    rc = SQLITE_OK
                    for j in range(cops[k].count):
                        rc = _bind(st, <int>j + 1, &vals[cops[k].first + j])
                        if rc != SQLITE_OK:
                            break
                    if rc == SQLITE_OK:
                        rc = sqlite3_step(st)
                        while rc == SQLITE_ROW:
                            rc = sqlite3_step(st)
                    if rc != SQLITE_DONE:
                        failed = <int>k
                        break
                    sqlite3_reset(st)
            if failed >= 0:
                try:
                    self._raise(rc)
                finally:
                    sqlite3_reset(cops[failed].stmt)
        finally:
            PyMem_Free(cops)
            PyMem_Free(vals)

    def query(self, str sql, params) -> list:
        """The rows of one statement (stepped with the GIL held)."""
        cdef sqlite3_stmt* st = self._stmt(sql)
        cdef list keep = []
        cdef Val v
        cdef int rc = SQLITE_OK, j, ncol, kind
        cdef list rows = []
        sqlite3_reset(st)
        if sqlite3_bind_parameter_count(st) != len(params):
            raise _sqlite3.ProgrammingError(
                f"Incorrect number of bindings supplied. The current statement uses "
                f"{sqlite3_bind_parameter_count(st)}, and there are {len(params)} supplied.")
        try:
            for j, value in enumerate(params):
                self._convert(value, &v, keep)
                rc = _bind(st, j + 1, &v)
                if rc != SQLITE_OK:
                    self._raise(rc)
            ncol = sqlite3_column_count(st)
            while True:
                rc = sqlite3_step(st)
                if rc != SQLITE_ROW:
                    break
                row = []
                for j in range(ncol):
                    kind = sqlite3_column_type(st, j)
                    if kind == SQLITE_INTEGER:
                        row.append(sqlite3_column_int64(st, j))
                    elif kind == SQLITE_FLOAT:
                        row.append(sqlite3_column_double(st, j))
                    elif kind == SQLITE_TEXT:
                        row.append((<const char*>sqlite3_column_text(st, j))[
                            :sqlite3_column_bytes(st, j)].decode("utf-8"))
                    elif kind == SQLITE_BLOB:
                        n = sqlite3_column_bytes(st, j)
                        row.append((<const char*>sqlite3_column_blob(st, j))[:n] if n else b"")
                    else:
                        row.append(None)
                rows.append(tuple(row))
            if rc != SQLITE_DONE:
                self._raise(rc)
        finally:
            sqlite3_reset(st)
        return rows
