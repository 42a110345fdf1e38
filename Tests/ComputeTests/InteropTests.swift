import CMPI
import Compute
import Testing

@Suite("C interop")
struct InteropTests {
    @Test("OpenBLAS sgemm through the CBLAS module gives the textbook product")
    func sgemmExact() {
        // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        gemm(m: 2, n: 2, k: 3, a: a, lda: 3, b: b, ldb: 2, c: &c, ldc: 2)
        #expect(c == [58, 64, 139, 154])
        #expect(Threads.blasConfig.contains("OpenBLAS"))
    }

    @Test("Open MPI's predefined handles are reachable through the shim")
    func mpiHandles() {
        // The getters compile only if the inline shim imports; the handles are distinct addresses.
        let handles = [UnsafeRawPointer(MPI_COMM_WORLD), UnsafeRawPointer(MPI_COMM_SELF), UnsafeRawPointer(MPI_FLOAT), UnsafeRawPointer(MPI_SUM)]
        #expect(Set(handles.map { Int(bitPattern: $0) }).count == 4)
        #expect(Int(bitPattern: MPI_IN_PLACE) == 1)
        #expect(MPI_SUCCESS == 0)
    }
}
