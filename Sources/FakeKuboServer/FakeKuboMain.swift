@main struct FakeKuboMain { static func main() {} }
