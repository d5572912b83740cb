// Open MPI through dlopen: see include/kiln_mpi.h.
#include "kiln_mpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void *handle_t;

static int (*mpi_init)(int *, char ***);
static int (*mpi_finalize)(void);
static int (*mpi_get_version)(int *, int *);
static int (*mpi_get_library_version)(char *, int *);
static int (*mpi_error_string)(int, char *, int *);
static int (*mpi_comm_rank)(handle_t, int *);
static int (*mpi_comm_size)(handle_t, int *);
static int (*mpi_comm_set_errhandler)(handle_t, handle_t);
static int (*mpi_iallreduce)(const void *, void *, int, handle_t, handle_t, handle_t, kiln_mpi_request *);
static int (*mpi_ibcast)(void *, int, handle_t, int, handle_t, kiln_mpi_request *);
static int (*mpi_iallgather)(const void *, int, handle_t, void *, int, handle_t, handle_t, kiln_mpi_request *);
static int (*mpi_test)(kiln_mpi_request *, int *, void *);

static handle_t comm_world, type_float, type_double, type_int64, type_byte, op_sum, op_max, errors_return;

/// MPI_IN_PLACE in Open MPI's ABI.
#define KILN_MPI_IN_PLACE ((void *)1)

static int resolve(void *library, const char *name, void **slot, char *message, size_t capacity) {
    *slot = dlsym(library, name);
    if (*slot) return 0;
    snprintf(message, capacity, "has no symbol %s", name);
    return 1;
}

int kiln_mpi_load(const char *path, char *message, size_t capacity) {
    const char *name = path ? path : "libmpi.so.40";
    // RTLD_GLOBAL: Open MPI's own plugins (mca components) are opened later and look up libmpi's symbols.
    void *library = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        const char *reason = dlerror();
        snprintf(message, capacity, "cannot load %s (%s)", name, reason ? reason : "unknown reason");
        return 1;
    }
    struct { const char *name; void **slot; } symbols[] = {
        {"MPI_Init", (void **)&mpi_init}, {"MPI_Finalize", (void **)&mpi_finalize},
        {"MPI_Get_version", (void **)&mpi_get_version}, {"MPI_Get_library_version", (void **)&mpi_get_library_version},
        {"MPI_Error_string", (void **)&mpi_error_string}, {"MPI_Comm_rank", (void **)&mpi_comm_rank},
        {"MPI_Comm_size", (void **)&mpi_comm_size}, {"MPI_Comm_set_errhandler", (void **)&mpi_comm_set_errhandler},
        {"MPI_Iallreduce", (void **)&mpi_iallreduce}, {"MPI_Ibcast", (void **)&mpi_ibcast},
        {"MPI_Iallgather", (void **)&mpi_iallgather}, {"MPI_Test", (void **)&mpi_test},
        {"ompi_mpi_comm_world", &comm_world}, {"ompi_mpi_float", &type_float}, {"ompi_mpi_double", &type_double},
        {"ompi_mpi_int64_t", &type_int64}, {"ompi_mpi_byte", &type_byte}, {"ompi_mpi_op_sum", &op_sum},
        {"ompi_mpi_op_max", &op_max}, {"ompi_mpi_errors_return", &errors_return},
    };
    char missing[160];
    for (size_t index = 0; index < sizeof symbols / sizeof symbols[0]; index++) {
        if (resolve(library, symbols[index].name, symbols[index].slot, missing, sizeof missing)) {
            snprintf(message, capacity, "%s %s: not Open MPI 3.0 or later (MPICH's ABI is not supported)", name, missing);
            return 1;
        }
    }
    int major = 0, minor = 0;
    mpi_get_version(&major, &minor);
    if (major < 3) {
        snprintf(message, capacity, "%s implements MPI %d.%d; non-blocking collectives need MPI 3.0 (Open MPI 1.8 or later)", name, major, minor);
        return 1;
    }
    return 0;
}

int kiln_mpi_init(int *rank, int *size) {
    int code = mpi_init(NULL, NULL);
    if (code) return code;
    if ((code = mpi_comm_set_errhandler(comm_world, errors_return))) return code;
    if ((code = mpi_comm_rank(comm_world, rank))) return code;
    return mpi_comm_size(comm_world, size);
}

int kiln_mpi_finalize(void) { return mpi_finalize(); }

void kiln_mpi_library_version(char *text, size_t capacity) {
    char version[8192] = {0};
    int length = 0;
    mpi_get_library_version(version, &length);
    snprintf(text, capacity, "%s", version);
}

void kiln_mpi_error_string(int code, char *text, size_t capacity) {
    char error[1024] = {0};
    int length = 0;
    if (mpi_error_string(code, error, &length)) snprintf(error, sizeof error, "MPI error %d", code);
    snprintf(text, capacity, "%s", error);
}

int kiln_mpi_iallreduce_sum_float(float *values, int count, kiln_mpi_request *request) {
    return mpi_iallreduce(KILN_MPI_IN_PLACE, values, count, type_float, op_sum, comm_world, request);
}

int kiln_mpi_iallreduce_sum_double(double *values, int count, kiln_mpi_request *request) {
    return mpi_iallreduce(KILN_MPI_IN_PLACE, values, count, type_double, op_sum, comm_world, request);
}

int kiln_mpi_iallreduce_max_int64(int64_t *values, int count, kiln_mpi_request *request) {
    return mpi_iallreduce(KILN_MPI_IN_PLACE, values, count, type_int64, op_max, comm_world, request);
}

int kiln_mpi_ibcast_bytes(void *bytes, int count, int root, kiln_mpi_request *request) {
    return mpi_ibcast(bytes, count, type_byte, root, comm_world, request);
}

int kiln_mpi_iallgather_bytes(const void *sent, int count, void *received, kiln_mpi_request *request) {
    return mpi_iallgather(sent, count, type_byte, received, count, type_byte, comm_world, request);
}

int kiln_mpi_test(kiln_mpi_request *request, int *done) {
    // MPI_STATUS_IGNORE is a null pointer in Open MPI's ABI.
    return mpi_test(request, done, NULL);
}
