// Open MPI, loaded at run time: `libmpi.so.40` (Open MPI 3.0 and later, the ABI Debian's libopenmpi3
// ships) is opened with dlopen only when kiln runs under mpirun, so kiln builds and runs on hosts
// without MPI and links no MPI library. No MPI header is needed at build time: Open MPI's handles
// (MPI_Comm, MPI_Request, MPI_Datatype, MPI_Op, MPI_Errhandler) are pointers, and its predefined
// handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_ERRORS_RETURN) are the addresses of the symbols
// ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum and ompi_mpi_errors_return, found with dlsym.
// MPICH's libmpi.so.12 is another ABI (integer handles) and is not supported.
//
// Every function returns an MPI error code (0 is MPI_SUCCESS); the world communicator returns errors
// instead of aborting (MPI_ERRORS_RETURN), so a dead peer becomes an error the caller reports.
#ifndef KILN_MPI_H
#define KILN_MPI_H

#include <stddef.h>
#include <stdint.h>

/// An outstanding non-blocking operation (Open MPI's MPI_Request); NULL once it has completed.
typedef void *kiln_mpi_request;

/// Opens `library` (NULL: "libmpi.so.40") and resolves every function and handle Kiln uses; checks that
/// the library implements MPI 3.0 or later. On failure returns non-zero with a sentence in `message`.
int kiln_mpi_load(const char *library, char *message, size_t capacity);

/// MPI_Init, then MPI_ERRORS_RETURN on MPI_COMM_WORLD; rank and size of the world.
int kiln_mpi_init(int *rank, int *size);

/// MPI_Finalize.
int kiln_mpi_finalize(void);

/// The library's version string (MPI_Get_library_version), cut to `capacity`.
void kiln_mpi_library_version(char *text, size_t capacity);

/// MPI_Error_string of a code, cut to `capacity`.
void kiln_mpi_error_string(int code, char *text, size_t capacity);

/// In-place sum over every rank (MPI_Iallreduce with MPI_IN_PLACE).
int kiln_mpi_iallreduce_sum_float(float *values, int count, kiln_mpi_request *request);
int kiln_mpi_iallreduce_sum_double(double *values, int count, kiln_mpi_request *request);
/// In-place maximum over every rank.
int kiln_mpi_iallreduce_max_int64(int64_t *values, int count, kiln_mpi_request *request);

/// Rank `root`'s bytes into every rank's `bytes` (MPI_Ibcast).
int kiln_mpi_ibcast_bytes(void *bytes, int count, int root, kiln_mpi_request *request);

/// Every rank's `count` bytes, in rank order, into `received` (`count * size` bytes; MPI_Iallgather).
int kiln_mpi_iallgather_bytes(const void *sent, int count, void *received, kiln_mpi_request *request);

/// MPI_Test: `done` is set to 1 (and `request` to NULL) once the operation has completed.
int kiln_mpi_test(kiln_mpi_request *request, int *done);

#endif
