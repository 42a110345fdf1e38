// libFuzzer target: an image–caption table from an untrusted source read by CSVTable, as
// `--data csv:` reads one: the header, then every row, going on past the row errors the table
// says can be skipped. Read twice: tab-separated with quoting (the default) and comma-separated
// without quoting.

import Data
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = ScratchFile.write(data, size, suffix: ".csv")
    for options in [CSVOptions(), CSVOptions(separator: ",", quoting: false)] {
        guard let table = try? CSVTable(path: path, options: options) else { continue }
        while true {
            do {
                guard try table.next() != nil else { break }
            } catch {
                if !error.canSkipRow { break }
            }
        }
    }
    return 0
}
