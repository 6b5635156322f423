/// The browser demo page, embedded in the binary at build time (Resources/index.html).
enum Page {
    static let html: [UInt8] = PackageResources.index_html
}
