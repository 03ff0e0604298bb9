//! Vectors observed with clamscan 1.4.6 (`--leave-temps --tempdir D`, its `nocomment.html`,
//! `notags.html` and text `clamav-*.tmp` files, and `--debug`'s `Recognized ...` / `in cli_scanhtml()`),
//! and `clamscan_oracle`, which repeats the comparison live on a few hundred generated documents when
//! clamscan is installed (required under CI).

use super::*;

fn forms(page: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let f = html::normalize(page, usize::MAX);
    (f.nocomment, f.notags)
}

fn check(page: &[u8], nocomment: &[u8], notags: &[u8]) {
    let (nc, nt) = forms(page);
    assert_eq!(
        (nc.escape_ascii().to_string(), nt.escape_ascii().to_string()),
        (
            nocomment.escape_ascii().to_string(),
            notags.escape_ascii().to_string()
        ),
        "page {:?}",
        page.escape_ascii().to_string()
    );
}

#[test]
fn html_text_whitespace_and_case() {
    // clamscan 1.4.6: lowercased, runs of white space one space, none after a tag or at the ends.
    check(
        b"<html>Hello   World\n\n  Foo\tBar\r\nBaz</html>",
        b"<html>hello world foo bar baz</html>",
        b" hello world foo bar baz ",
    );
    check(b"  <html>  a  </html>  ", b"<html>a </html>", b" a ");
    check(
        b"<html>a <p> b </p> c</html>",
        b"<html>a <p>b </p>c</html>",
        b" a b c ",
    );
    check(b"<html>a  ", b"<html>a", b" a ");
    check(
        b"x<html>a <!-- c --> b</html>",
        b"x<html>a b</html>",
        b"x a b ",
    );
    check(
        b"<html>x<!-- c --> b <!-- d -->  e",
        b"<html>xb e",
        b" x b e",
    );
}

#[test]
fn html_comments_end_at_first_gt() {
    // clamscan 1.4.6: `<!` up to the next `>` is dropped, whatever follows `<!`.
    check(b"<html><!-- a -->b<!--c-->d<!-- e", b"<html>bd", b" b d ");
    check(
        b"<html>a<!->b<!>c<!--->d<!---->e",
        b"<html>abcde",
        b" a b c d e",
    );
    check(
        b"<html>a<!-- x > y -->b<!x > y>c",
        b"<html>ay -->by>c",
        b" a y -->b y>c",
    );
}

#[test]
fn html_references() {
    // clamscan 1.4.6: decoded below 255 (ASCII lowercased only when `;` ends it), else `&#xhhhh;`;
    // `notags` has one space per `&name`, `&name;`, `&#...`, decoded or not.
    check(
        b"<html>&lt;&gt;&amp;&quot;&apos;&nbsp;&copy;&#65;&#x42;&#X43;&#x;&#;&#1234;&#x4e2d;&foo;&amp</html>",
        b"<html><>&\"'\xa0\xa9abc\x00\x00&#x04d2;&#x4e2d;&foo;&amp</html>",
        b" ",
    );
    check(
        b"<html>1&#65 2&#65x 3&#x41x 6&#256; 8&#255; 12&#32; 13 14&#1114111; 15&#99999999999; 16&LT; 17&Lt; 18&lt",
        b"<html>1A 2Ax 3Ax 6&#x0100; 8&#x00ff; 12  13 14&#xffff; 15&#xe7ff; 16&lt; 17&#x226a; 18<",
        b" 1 2 x 3 x 6 8 12 13 14 15 16 17 18 ",
    );
    check(b"<html>x&lt;y</html>", b"<html>x<y</html>", b" x y ");
    check(
        b"<html>a & b &; c &#z d",
        b"<html>a & b &; c \x00z d",
        b" a b c z d",
    );
}

#[test]
fn html_bytes() {
    // clamscan 1.4.6: NUL and CR vanish; notags turns controls into spaces and 0x80.. into NUL.
    check(
        b"<html>u\xe9v w\x01x y\x00z",
        b"<html>u\xe9v w\x01x yz",
        b" u\x00v w x yz",
    );
    check(
        b"\x00\x01\x02\x03\x04\x05\x06\x07\x00\x00<html>Hello World</html>",
        b"\x01\x02\x03\x04\x05\x06\x07<html>hello world</html>",
        b" hello world ",
    );
}

#[test]
fn html_tags_rewritten() {
    // clamscan 1.4.6: attribute spacing normalised, values double-quoted, lowercased, decoded.
    check(
        b"<html><a  HREF = \"X  Y\"  title='Z  W' onclick=Foo(1) >t</a ><img src = \"I.PNG\" alt=\"Q  R\"><P   CLASS=Big>",
        b"<html><a href=\"x y\" title=\"z w\" onclick=foo(1)>t</a><img src=\"i.png\" alt=\"q r\"><p class=big>",
        b" X Y t I.PNG ",
    );
    check(
        b"<html><a href = x title = \"y\" >t</a><a href=\"x\"title=\"y\">u</a><a =x>v</a><a href==\"x\">w<a href=\"x\"y>q<a href=x\"y\">r",
        b"<html><a href=x title=\"y\">t</a><a href=\"x\" title=\"y\">u</a><a=x>v</a><a href==\"x\">w<a href=\"x\" y>q<a href=x\"y\">r",
        b" x t x u v =\"x\" w x q x\"y\" r",
    );
    check(
        b"<html><b\n>x</b\t>y< b>z</ b><>q< >r</>s",
        b"<html><b>x</b>y<b>z</ b><>q<>r</>s",
        b" x y z q r s",
    );
    // clamscan 1.4.6: a link the page ends in (or inside) is not shown in notags.
    check(b"<html><a href=\"x", b"<html><a href=\"x", b" ");
    check(b"<html><A HREF=\"X\" ", b"<html><a href=\"x\"", b" ");
    check(
        b"<html><a name=x href=S15>",
        b"<html><a name=x href=s15>",
        b" ",
    );
    // clamscan 1.4.6: in a shown link, a numeric reference is its low byte, a named one as in
    // nocomment; a NUL cuts the link one byte before it; only the first href counts.
    check(
        b"<html><img src='A&#8364;&euro;'>t<a href=\"a&#0;b\">u<img src=\"8RY&#65;&#0;\">v<A hREF href=x>w",
        b"<html><img src=\"a&#x20ac;&#x20ac;\">t<a href=\"a\x00b\">u<img src=\"8rya\x00\">v<a href href=x>w",
        b" A\xac&#x20ac; t u 8RY v w",
    );
    // clamscan 1.4.6: only a tag's first href/src; the value and the space after it are not collapsed.
    check(
        b"<html><IMG SRC=J SRC=\" \">x<a href=' '>y",
        b"<html><img src=j src=\" \">x<a href=\" \">y",
        b" J x   y",
    );
    // clamscan 1.4.6: without `;` a numeric reference is its low byte as it is.
    check(
        b"<html><p title='&#6651p'>&#66 ",
        b"<html><p title=\"\xfbp\">B",
        b" ",
    );
    // clamscan 1.4.6: `/` right after a quoted value with a space gets no space; a single-quoted value with two spaces
    // keeps its closing `'`.
    check(
        b"<html><b id=\"x y\"/><b id=\"x\"/><i alt='J x x' id='y z'>",
        b"<html><b id=\"x y\"/><b id=\"x\" /><i alt=\"j x x' id=\"y z\">",
        b" ",
    );
    check(
        b"<html><a href=\"&lt;X&#65;&amp;\">t<a title=A&lt;B>u</html>",
        b"<html><a href=\"<xa&\">t<a title=a<b>u</html>",
        b" <XA& t u ",
    );
}

#[test]
fn html_script_and_style() {
    // clamscan 1.4.6: script and style content loses all white space and is left out of notags.
    check(
        b"<html><script>var  A = 1;\n  B=2</script>T<style>p { color: Red }</style>U</html>",
        b"<html><script>vara=1;b=2</script>t<style>p{color:red}</style>u</html>",
        b" t u ",
    );
    check(
        b"<html><script><!-- x --></script><p><!-- y -->z<script>a<b</script>",
        b"<html><script><!--x--></script><p>z<script>a<b</script>",
        b" z ",
    );
    check(
        b"<html><script>var A=&lt;1&gt;;</script>",
        b"<html><script>vara=<1>;</script>",
        b" ",
    );
    check(
        b"<html><style>A  B</style >C",
        b"<html><style>ab</style>c",
        b" >c",
    );
}

#[test]
fn html_output_is_bounded() {
    let page = b"<html>".repeat(1000);
    let f = html::normalize(&page, 100);
    assert_eq!((f.nocomment.len(), f.notags.len()), (100, 1));
    let f = html::normalize(b"<html>&euro;", 9);
    assert_eq!(f.nocomment, b"<html>&#x");
}

#[test]
fn text_form() {
    // clamscan 1.4.6: lowercase, white space runs one space, controls and 0x80.. dropped, DEL kept.
    let t = |d: &[u8]| text::normalize(d, usize::MAX);
    assert_eq!(
        t(b"Hello World  Foo\r\nBar\tBaz\x0b\x0cQ\x01R\x00S\x7fT\xe9U\xffV end of the text\n"),
        b"hello world foo bar baz qrs\x7ftuv end of the text "
    );
    assert_eq!(
        t(b"  lead space and trailing   \n\n"),
        b" lead space and trailing "
    );
    assert_eq!(
        t(b"plain a \x01 b \xe9\xe9 c\x00 \x00d e"),
        b"plain a b c d e"
    );
    // clamscan 1.4.6: UTF-16 text is not decoded; its NULs vanish (U+4E2D is `-N`).
    let mut u = vec![0xFF, 0xFE];
    for c in "Caf\u{e9} \u{4e2d}X end\n".encode_utf16() {
        u.extend_from_slice(&c.to_le_bytes());
    }
    assert_eq!(t(&u), b"caf -nx end ");
    assert_eq!(text::normalize(b"ABCDEF", 3), b"abc");
}

#[test]
fn typing() {
    // clamscan 1.4.6 `Recognized ...` for a file no magic claims.
    assert_eq!(classify(b"some text here \x01 more"), TextKind::Utf16Be);
    assert_eq!(classify(b"some text \x07\x1b\xe9 here"), TextKind::Ascii);
    assert_eq!(classify(&[0u8; 12]), TextKind::Binary);
    let mut late = vec![b'a'; 1024];
    late.extend_from_slice(&[0; 8]);
    assert_eq!(classify(&late), TextKind::Ascii);
    assert_eq!(classify(b"\xff\xfea\x00\x00\x00b\x00"), TextKind::Utf16Le);
    assert_eq!(classify(b"\xff\xfea\x00\xfe\xffb\x00"), TextKind::Binary);
    assert_eq!(classify(b"\x01b\x00\x0bab"), TextKind::Binary);
    assert_eq!(classify(b"\x01b\x00\x0aab"), TextKind::Utf16Be);
}

#[test]
fn html_typing() {
    // clamscan 1.4.6: only these spellings, anywhere in text, in the first KiB of binary data.
    for yes in [
        &b"words <html> x"[..],
        b"<HTML>",
        b"x <Head>",
        b"<imgx",
        b"<SCRIPT",
        b"<iframe",
        b"<Object",
        b"<TABLE",
        b"<a x href",
        b"<A  HrEF",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x90<html>",
    ] {
        assert!(is_html(yes), "{:?}", yes.escape_ascii().to_string());
    }
    for no in [
        &b"words <html lang=en> x"[..],
        b"<HtMl>",
        b"<body>",
        b"<!DOCTYPE html>",
        b"<title>",
        b"<meta",
        b"<Iframe",
        b"<Table",
        b"<a\thref",
        b"<a hReF",
        b"href <a x",
    ] {
        assert!(!is_html(no), "{:?}", no.escape_ascii().to_string());
    }
    let mut far = vec![0u8; 8];
    far.extend(std::iter::repeat_n(b'a', 1011));
    far.extend_from_slice(b"<html>");
    assert!(!is_html(&far));
    far.remove(9);
    assert!(is_html(&far));
    // UTF-16LE HTML is folded to bytes; BE with a mark is normalised as it is.
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("<html>\u{4e2d}".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(html_input(&le).as_deref(), Some(&b"\xdf<html>\x0d"[..]));
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain("<html>".encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(html_input(&be).as_deref(), Some(&be[..]));
    let be_no_mark: Vec<u8> = "ab<html>x"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert!(!is_html(&be_no_mark));
}

mod oracle;
