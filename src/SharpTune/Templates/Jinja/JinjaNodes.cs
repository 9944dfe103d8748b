namespace SharpTune.Templates.Jinja;

// Statements. Line numbers travel with nodes so that render-time errors can name them.
abstract record Node(int Line);
sealed record TextNode(string Text, int Line) : Node(Line);
sealed record OutputNode(Expr Value, int Line) : Node(Line);
sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node>? ElseBody, int Line) : Node(Line);
sealed record ForNode(List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? ElseBody, int Line) : Node(Line);
sealed record SetNode(List<string> Targets, string? Attribute, Expr Value, int Line) : Node(Line);
sealed record SetBlockNode(string Target, List<Node> Body, int Line) : Node(Line);
sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body, int Line) : Node(Line);
sealed record BreakNode(int Line) : Node(Line);
sealed record ContinueNode(int Line) : Node(Line);

// Expressions.
abstract record Expr(int Line);
sealed record LiteralExpr(object? Value, int Line) : Expr(Line);
sealed record NameExpr(string Name, int Line) : Expr(Line);
sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);
sealed record DictExpr(List<(Expr Key, Expr Value)> Items, int Line) : Expr(Line);
sealed record AttributeExpr(Expr Target, string Name, int Line) : Expr(Line);
sealed record ItemExpr(Expr Target, Expr Key, int Line) : Expr(Line);
sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);
sealed record CallExpr(Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
sealed record FilterExpr(Expr Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
sealed record TestExpr(Expr Value, string Name, List<Expr> Args, bool Negated, int Line) : Expr(Line);
sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line) : Expr(Line);
sealed record UnaryExpr(string Op, Expr Operand, int Line) : Expr(Line);
sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else, int Line) : Expr(Line);
