/// The float64 reference of every op family: plain loops over `[Double]`, each the living definition of
/// a backend primitive (its doc comment is the math). Tests compare every backend against it; each
/// family extends it in `Reference/Reference+<Family>.swift`.
public enum Reference {}
