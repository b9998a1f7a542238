#!/usr/bin/perl
# Perl LWP::UserAgent over HTTPS: a GET and a POST, keep-alive. The CA comes from
# PERL_LWP_SSL_CA_FILE. Usage: perl_tls_lwp.pl BASE
use strict;
use warnings;
use LWP::UserAgent;

my $base = shift or die "usage: $0 BASE\n";
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 20);
my $a = $ua->get("$base/hello?from=perl-lwp-tls", 'X-Tapline-Test' => 'perl-lwp-tls');
die "GET failed: " . $a->status_line . "\n" unless $a->is_success;
chomp(my $body = $a->decoded_content);
print "GET " . $a->code . " " . $a->header('X-Echo-Query') . " $body\n";
my $b = $ua->post("$base/echo?from=perl-lwp-tls", 'Content-Type' => 'text/plain',
    Content => 'l' x 2600);
die "POST failed: " . $b->status_line . "\n" unless $b->is_success;
print "POST " . $b->code . "\n";
