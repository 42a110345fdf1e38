#ifndef CLIPLAB_CMPI_SHIM_H
#define CLIPLAB_CMPI_SHIM_H
#include <mpi.h>

// Open MPI defines its predefined handles as cast expressions such as
//   #define MPI_COMM_WORLD ((MPI_Comm) &(ompi_mpi_comm_world))
// which Swift's Clang importer cannot import. Each handle used from Swift is re-exported through
// a static inline getter; swift_name makes it appear in Swift as a read-only global with the C name.
// `#name` does not macro-expand its argument, so the getter is *named* MPI_COMM_WORLD while
// `return name;` expands to Open MPI's expression.
#define CLIPLAB_MPI_HANDLE(type, name) \
    static inline __attribute__((always_inline)) \
    type cliplab_##name(void) __attribute__((swift_name("getter:" #name "()"))) { return name; }

CLIPLAB_MPI_HANDLE(MPI_Comm, MPI_COMM_WORLD)
CLIPLAB_MPI_HANDLE(MPI_Comm, MPI_COMM_SELF)
CLIPLAB_MPI_HANDLE(MPI_Comm, MPI_COMM_NULL)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_FLOAT)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_DOUBLE)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_INT)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_INT64_T)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_UINT64_T)
CLIPLAB_MPI_HANDLE(MPI_Datatype, MPI_BYTE)
CLIPLAB_MPI_HANDLE(MPI_Op, MPI_SUM)
CLIPLAB_MPI_HANDLE(MPI_Op, MPI_MAX)
CLIPLAB_MPI_HANDLE(MPI_Op, MPI_MIN)
CLIPLAB_MPI_HANDLE(MPI_Errhandler, MPI_ERRORS_RETURN)
CLIPLAB_MPI_HANDLE(MPI_Errhandler, MPI_ERRORS_ARE_FATAL)
CLIPLAB_MPI_HANDLE(MPI_Request, MPI_REQUEST_NULL)

// MPI_IN_PLACE is ((void *) 1) and MPI_STATUS_IGNORE a cast null pointer: neither imports.
static inline __attribute__((always_inline))
void *cliplab_MPI_IN_PLACE(void) __attribute__((swift_name("getter:MPI_IN_PLACE()"))) { return MPI_IN_PLACE; }
static inline __attribute__((always_inline))
MPI_Status *cliplab_MPI_STATUS_IGNORE(void) __attribute__((swift_name("getter:MPI_STATUS_IGNORE()"))) { return MPI_STATUS_IGNORE; }

#endif
